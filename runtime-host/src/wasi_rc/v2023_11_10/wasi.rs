//! cli, clocks, random, io, filesystem and sockets of `0.2.0-rc-2023-11-10`, forwarded to WASI 0.2.

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::TrappableError;
use wasmtime_wasi::cli::WasiCliCtxView;
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, FsError, IoError};
use wasmtime_wasi::p2::{FsResult, SocketError, SocketResult, StreamError, StreamResult};
use wasmtime_wasi::random::WasiRandomCtx;
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use super::latest;
use super::{cli, clocks, filesystem, io, random, sockets};

use filesystem::types::{
    Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use latest::filesystem::types::{
    Advice as LAdvice, DescriptorFlags as LDescriptorFlags, DescriptorStat as LDescriptorStat,
    DescriptorType as LDescriptorType, DirectoryEntry as LDirectoryEntry, ErrorCode as LErrorCode,
    MetadataHashValue as LMetadataHashValue, NewTimestamp as LNewTimestamp,
    OpenFlags as LOpenFlags, PathFlags as LPathFlags,
};
use latest::filesystem::types::{Descriptor, DirectoryEntryStream};
use latest::sockets::network::{
    ErrorCode as LSocketErrorCode, IpAddress as LIpAddress, IpAddressFamily as LIpAddressFamily,
    IpSocketAddress as LIpSocketAddress, Ipv4SocketAddress as LIpv4SocketAddress,
    Ipv6SocketAddress as LIpv6SocketAddress, Network,
};
use latest::sockets::udp::{
    IncomingDatagram as LIncomingDatagram, IncomingDatagramStream,
    OutgoingDatagram as LOutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
use latest::sockets::{ip_name_lookup::ResolveAddressStream, tcp::TcpSocket};
use sockets::network::{
    ErrorCode as SocketErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress,
};
use sockets::tcp::ShutdownType;
use sockets::udp::{IncomingDatagram, OutgoingDatagram};

type Datetime = clocks::wall_clock::Datetime;
type LDatetime = latest::clocks::wall_clock::Datetime;
type LShutdownType = latest::sockets::tcp::ShutdownType;

// ---- io ----

impl io::error::Host for ResourceTable {}

impl io::error::HostError for ResourceTable {
    fn to_debug_string(&mut self, self_: Resource<IoError>) -> wasmtime::Result<String> {
        latest::io::error::HostError::to_debug_string(self, self_)
    }

    fn drop(&mut self, rep: Resource<IoError>) -> wasmtime::Result<()> {
        latest::io::error::HostError::drop(self, rep)
    }
}

impl io::poll::Host for ResourceTable {
    async fn poll(&mut self, list: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        latest::io::poll::Host::poll(self, list).await
    }
}

impl io::poll::HostPollable for ResourceTable {
    async fn block(&mut self, rep: Resource<DynPollable>) -> wasmtime::Result<()> {
        latest::io::poll::HostPollable::block(self, rep).await
    }

    async fn ready(&mut self, rep: Resource<DynPollable>) -> wasmtime::Result<bool> {
        latest::io::poll::HostPollable::ready(self, rep).await
    }

    fn drop(&mut self, rep: Resource<DynPollable>) -> wasmtime::Result<()> {
        latest::io::poll::HostPollable::drop(self, rep)
    }
}

impl io::streams::Host for ResourceTable {
    fn convert_stream_error(
        &mut self,
        err: StreamError,
    ) -> wasmtime::Result<io::streams::StreamError> {
        Ok(
            match latest::io::streams::Host::convert_stream_error(self, err)? {
                latest::io::streams::StreamError::Closed => io::streams::StreamError::Closed,
                latest::io::streams::StreamError::LastOperationFailed(e) => {
                    io::streams::StreamError::LastOperationFailed(e)
                }
            },
        )
    }
}

impl io::streams::HostInputStream for ResourceTable {
    fn read(&mut self, self_: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        latest::io::streams::HostInputStream::read(self, self_, len)
    }

    async fn blocking_read(
        &mut self,
        self_: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        latest::io::streams::HostInputStream::blocking_read(self, self_, len).await
    }

    fn skip(&mut self, self_: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        latest::io::streams::HostInputStream::skip(self, self_, len)
    }

    async fn blocking_skip(
        &mut self,
        self_: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        latest::io::streams::HostInputStream::blocking_skip(self, self_, len).await
    }

    fn subscribe(
        &mut self,
        self_: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        latest::io::streams::HostInputStream::subscribe(self, self_)
    }

    async fn drop(&mut self, rep: Resource<DynInputStream>) -> wasmtime::Result<()> {
        latest::io::streams::HostInputStream::drop(self, rep).await
    }
}

impl io::streams::HostOutputStream for ResourceTable {
    fn check_write(&mut self, self_: Resource<DynOutputStream>) -> StreamResult<u64> {
        latest::io::streams::HostOutputStream::check_write(self, self_)
    }

    fn write(&mut self, self_: Resource<DynOutputStream>, contents: Vec<u8>) -> StreamResult<()> {
        latest::io::streams::HostOutputStream::write(self, self_, contents)
    }

    async fn blocking_write_and_flush(
        &mut self,
        self_: Resource<DynOutputStream>,
        contents: Vec<u8>,
    ) -> StreamResult<()> {
        latest::io::streams::HostOutputStream::blocking_write_and_flush(self, self_, contents).await
    }

    fn flush(&mut self, self_: Resource<DynOutputStream>) -> StreamResult<()> {
        latest::io::streams::HostOutputStream::flush(self, self_)
    }

    async fn blocking_flush(&mut self, self_: Resource<DynOutputStream>) -> StreamResult<()> {
        latest::io::streams::HostOutputStream::blocking_flush(self, self_).await
    }

    fn subscribe(
        &mut self,
        self_: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        latest::io::streams::HostOutputStream::subscribe(self, self_)
    }

    fn write_zeroes(&mut self, self_: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        latest::io::streams::HostOutputStream::write_zeroes(self, self_, len)
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        self_: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        latest::io::streams::HostOutputStream::blocking_write_zeroes_and_flush(self, self_, len)
            .await
    }

    fn splice(
        &mut self,
        self_: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        latest::io::streams::HostOutputStream::splice(self, self_, src, len)
    }

    async fn blocking_splice(
        &mut self,
        self_: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        latest::io::streams::HostOutputStream::blocking_splice(self, self_, src, len).await
    }

    async fn drop(&mut self, rep: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        latest::io::streams::HostOutputStream::drop(self, rep).await
    }
}

// ---- clocks, random, cli ----

same_record!(LDatetime, Datetime, [seconds, nanoseconds]);

impl clocks::wall_clock::Host for WasiClocksCtxView<'_> {
    fn now(&mut self) -> wasmtime::Result<Datetime> {
        Ok(latest::clocks::wall_clock::Host::now(self)?.into())
    }

    fn resolution(&mut self) -> wasmtime::Result<Datetime> {
        Ok(latest::clocks::wall_clock::Host::resolution(self)?.into())
    }
}

impl clocks::monotonic_clock::Host for WasiClocksCtxView<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        latest::clocks::monotonic_clock::Host::now(self)
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        latest::clocks::monotonic_clock::Host::resolution(self)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        latest::clocks::monotonic_clock::Host::subscribe_instant(self, when)
    }

    fn subscribe_duration(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        latest::clocks::monotonic_clock::Host::subscribe_duration(self, when)
    }
}

impl random::random::Host for WasiRandomCtx {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        latest::random::random::Host::get_random_bytes(self, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        latest::random::random::Host::get_random_u64(self)
    }
}

impl random::insecure::Host for WasiRandomCtx {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        latest::random::insecure::Host::get_insecure_random_bytes(self, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        latest::random::insecure::Host::get_insecure_random_u64(self)
    }
}

impl random::insecure_seed::Host for WasiRandomCtx {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        latest::random::insecure_seed::Host::insecure_seed(self)
    }
}

impl cli::exit::Host for WasiCliCtxView<'_> {
    fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()> {
        latest::cli::exit::Host::exit(self, status)
    }
}

impl cli::environment::Host for WasiCliCtxView<'_> {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        latest::cli::environment::Host::get_environment(self)
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        latest::cli::environment::Host::get_arguments(self)
    }

    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        latest::cli::environment::Host::initial_cwd(self)
    }
}

impl cli::stdin::Host for WasiCliCtxView<'_> {
    fn get_stdin(&mut self) -> wasmtime::Result<Resource<DynInputStream>> {
        latest::cli::stdin::Host::get_stdin(self)
    }
}

impl cli::stdout::Host for WasiCliCtxView<'_> {
    fn get_stdout(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        latest::cli::stdout::Host::get_stdout(self)
    }
}

impl cli::stderr::Host for WasiCliCtxView<'_> {
    fn get_stderr(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        latest::cli::stderr::Host::get_stderr(self)
    }
}

type TerminalInput = latest::cli::terminal_input::TerminalInput;
type TerminalOutput = latest::cli::terminal_output::TerminalOutput;

impl cli::terminal_input::Host for WasiCliCtxView<'_> {}

impl cli::terminal_input::HostTerminalInput for WasiCliCtxView<'_> {
    fn drop(&mut self, rep: Resource<TerminalInput>) -> wasmtime::Result<()> {
        latest::cli::terminal_input::HostTerminalInput::drop(self, rep)
    }
}

impl cli::terminal_output::Host for WasiCliCtxView<'_> {}

impl cli::terminal_output::HostTerminalOutput for WasiCliCtxView<'_> {
    fn drop(&mut self, rep: Resource<TerminalOutput>) -> wasmtime::Result<()> {
        latest::cli::terminal_output::HostTerminalOutput::drop(self, rep)
    }
}

impl cli::terminal_stdin::Host for WasiCliCtxView<'_> {
    fn get_terminal_stdin(&mut self) -> wasmtime::Result<Option<Resource<TerminalInput>>> {
        latest::cli::terminal_stdin::Host::get_terminal_stdin(self)
    }
}

impl cli::terminal_stdout::Host for WasiCliCtxView<'_> {
    fn get_terminal_stdout(&mut self) -> wasmtime::Result<Option<Resource<TerminalOutput>>> {
        latest::cli::terminal_stdout::Host::get_terminal_stdout(self)
    }
}

impl cli::terminal_stderr::Host for WasiCliCtxView<'_> {
    fn get_terminal_stderr(&mut self) -> wasmtime::Result<Option<Resource<TerminalOutput>>> {
        latest::cli::terminal_stderr::Host::get_terminal_stderr(self)
    }
}

// ---- filesystem ----

same_enum!(
    LDescriptorType,
    DescriptorType,
    [
        Unknown,
        BlockDevice,
        CharacterDevice,
        Directory,
        Fifo,
        SymbolicLink,
        RegularFile,
        Socket
    ]
);
same_flags!(
    LDescriptorFlags,
    DescriptorFlags,
    [
        READ,
        WRITE,
        FILE_INTEGRITY_SYNC,
        DATA_INTEGRITY_SYNC,
        REQUESTED_WRITE_SYNC,
        MUTATE_DIRECTORY
    ]
);
same_flags!(LPathFlags, PathFlags, [SYMLINK_FOLLOW]);
same_flags!(
    LOpenFlags,
    OpenFlags,
    [CREATE, DIRECTORY, EXCLUSIVE, TRUNCATE]
);
same_enum!(
    LAdvice,
    Advice,
    [Normal, Sequential, Random, WillNeed, DontNeed, NoReuse]
);
same_record!(LMetadataHashValue, MetadataHashValue, [lower, upper]);
same_record!(LDirectoryEntry, DirectoryEntry, [type_, name]);
same_enum!(
    LErrorCode,
    ErrorCode,
    [
        Access,
        WouldBlock,
        Already,
        BadDescriptor,
        Busy,
        Deadlock,
        Quota,
        Exist,
        FileTooLarge,
        IllegalByteSequence,
        InProgress,
        Interrupted,
        Invalid,
        Io,
        IsDirectory,
        Loop,
        TooManyLinks,
        MessageSize,
        NameTooLong,
        NoDevice,
        NoEntry,
        NoLock,
        InsufficientMemory,
        InsufficientSpace,
        NotDirectory,
        NotEmpty,
        NotRecoverable,
        Unsupported,
        NoTty,
        NoSuchDevice,
        Overflow,
        NotPermitted,
        Pipe,
        ReadOnly,
        InvalidSeek,
        TextFileBusy,
        CrossDevice
    ]
);

impl From<LDescriptorStat> for DescriptorStat {
    fn from(s: LDescriptorStat) -> Self {
        Self {
            type_: s.type_.into(),
            link_count: s.link_count,
            size: s.size,
            data_access_timestamp: s.data_access_timestamp.map(Into::into),
            data_modification_timestamp: s.data_modification_timestamp.map(Into::into),
            status_change_timestamp: s.status_change_timestamp.map(Into::into),
        }
    }
}

impl From<NewTimestamp> for LNewTimestamp {
    fn from(t: NewTimestamp) -> Self {
        match t {
            NewTimestamp::NoChange => Self::NoChange,
            NewTimestamp::Now => Self::Now,
            NewTimestamp::Timestamp(d) => Self::Timestamp(d.into()),
        }
    }
}

impl filesystem::types::Host for WasiFilesystemCtxView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        Ok(latest::filesystem::types::Host::convert_error_code(self, err)?.into())
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<IoError>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        Ok(latest::filesystem::types::Host::filesystem_error_code(self, err)?.map(Into::into))
    }
}

impl filesystem::types::HostDescriptor for WasiFilesystemCtxView<'_> {
    fn read_via_stream(
        &mut self,
        self_: Resource<Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynInputStream>> {
        latest::filesystem::types::HostDescriptor::read_via_stream(self, self_, offset)
    }

    fn write_via_stream(
        &mut self,
        self_: Resource<Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynOutputStream>> {
        latest::filesystem::types::HostDescriptor::write_via_stream(self, self_, offset)
    }

    fn append_via_stream(
        &mut self,
        self_: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        latest::filesystem::types::HostDescriptor::append_via_stream(self, self_)
    }

    async fn advise(
        &mut self,
        self_: Resource<Descriptor>,
        offset: u64,
        length: u64,
        advice: Advice,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::advise(
            self,
            self_,
            offset,
            length,
            advice.into(),
        )
        .await
    }

    async fn sync_data(&mut self, self_: Resource<Descriptor>) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::sync_data(self, self_).await
    }

    async fn get_flags(&mut self, self_: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        Ok(
            latest::filesystem::types::HostDescriptor::get_flags(self, self_)
                .await?
                .into(),
        )
    }

    async fn get_type(&mut self, self_: Resource<Descriptor>) -> FsResult<DescriptorType> {
        Ok(
            latest::filesystem::types::HostDescriptor::get_type(self, self_)
                .await?
                .into(),
        )
    }

    async fn set_size(&mut self, self_: Resource<Descriptor>, size: u64) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::set_size(self, self_, size).await
    }

    async fn set_times(
        &mut self,
        self_: Resource<Descriptor>,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::set_times(
            self,
            self_,
            data_access_timestamp.into(),
            data_modification_timestamp.into(),
        )
        .await
    }

    async fn read(
        &mut self,
        self_: Resource<Descriptor>,
        length: u64,
        offset: u64,
    ) -> FsResult<(Vec<u8>, bool)> {
        latest::filesystem::types::HostDescriptor::read(self, self_, length, offset).await
    }

    async fn write(
        &mut self,
        self_: Resource<Descriptor>,
        buffer: Vec<u8>,
        offset: u64,
    ) -> FsResult<u64> {
        latest::filesystem::types::HostDescriptor::write(self, self_, buffer, offset).await
    }

    async fn read_directory(
        &mut self,
        self_: Resource<Descriptor>,
    ) -> FsResult<Resource<DirectoryEntryStream>> {
        latest::filesystem::types::HostDescriptor::read_directory(self, self_).await
    }

    async fn sync(&mut self, self_: Resource<Descriptor>) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::sync(self, self_).await
    }

    async fn create_directory_at(
        &mut self,
        self_: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::create_directory_at(self, self_, path).await
    }

    async fn stat(&mut self, self_: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        Ok(latest::filesystem::types::HostDescriptor::stat(self, self_)
            .await?
            .into())
    }

    async fn stat_at(
        &mut self,
        self_: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        Ok(
            latest::filesystem::types::HostDescriptor::stat_at(
                self,
                self_,
                path_flags.into(),
                path,
            )
            .await?
            .into(),
        )
    }

    async fn set_times_at(
        &mut self,
        self_: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        data_access_timestamp: NewTimestamp,
        data_modification_timestamp: NewTimestamp,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::set_times_at(
            self,
            self_,
            path_flags.into(),
            path,
            data_access_timestamp.into(),
            data_modification_timestamp.into(),
        )
        .await
    }

    async fn link_at(
        &mut self,
        self_: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::link_at(
            self,
            self_,
            old_path_flags.into(),
            old_path,
            new_descriptor,
            new_path,
        )
        .await
    }

    async fn open_at(
        &mut self,
        self_: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        open_flags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        latest::filesystem::types::HostDescriptor::open_at(
            self,
            self_,
            path_flags.into(),
            path,
            open_flags.into(),
            flags.into(),
        )
        .await
    }

    async fn readlink_at(&mut self, self_: Resource<Descriptor>, path: String) -> FsResult<String> {
        latest::filesystem::types::HostDescriptor::readlink_at(self, self_, path).await
    }

    async fn remove_directory_at(
        &mut self,
        self_: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::remove_directory_at(self, self_, path).await
    }

    async fn rename_at(
        &mut self,
        self_: Resource<Descriptor>,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::rename_at(
            self,
            self_,
            old_path,
            new_descriptor,
            new_path,
        )
        .await
    }

    async fn symlink_at(
        &mut self,
        self_: Resource<Descriptor>,
        old_path: String,
        new_path: String,
    ) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::symlink_at(self, self_, old_path, new_path).await
    }

    async fn unlink_file_at(&mut self, self_: Resource<Descriptor>, path: String) -> FsResult<()> {
        latest::filesystem::types::HostDescriptor::unlink_file_at(self, self_, path).await
    }

    async fn is_same_object(
        &mut self,
        self_: Resource<Descriptor>,
        other: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        latest::filesystem::types::HostDescriptor::is_same_object(self, self_, other).await
    }

    async fn metadata_hash(&mut self, self_: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        Ok(
            latest::filesystem::types::HostDescriptor::metadata_hash(self, self_)
                .await?
                .into(),
        )
    }

    async fn metadata_hash_at(
        &mut self,
        self_: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        Ok(latest::filesystem::types::HostDescriptor::metadata_hash_at(
            self,
            self_,
            path_flags.into(),
            path,
        )
        .await?
        .into())
    }

    fn drop(&mut self, rep: Resource<Descriptor>) -> wasmtime::Result<()> {
        latest::filesystem::types::HostDescriptor::drop(self, rep)
    }
}

impl filesystem::types::HostDirectoryEntryStream for WasiFilesystemCtxView<'_> {
    async fn read_directory_entry(
        &mut self,
        self_: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        Ok(
            latest::filesystem::types::HostDirectoryEntryStream::read_directory_entry(self, self_)
                .await?
                .map(Into::into),
        )
    }

    fn drop(&mut self, rep: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        latest::filesystem::types::HostDirectoryEntryStream::drop(self, rep)
    }
}

impl filesystem::preopens::Host for WasiFilesystemCtxView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        latest::filesystem::preopens::Host::get_directories(self)
    }
}

// ---- sockets ----

same_enum!(
    LSocketErrorCode,
    SocketErrorCode,
    [
        Unknown,
        AccessDenied,
        NotSupported,
        InvalidArgument,
        OutOfMemory,
        Timeout,
        ConcurrencyConflict,
        NotInProgress,
        WouldBlock,
        InvalidState,
        NewSocketLimit,
        AddressNotBindable,
        AddressInUse,
        RemoteUnreachable,
        ConnectionRefused,
        ConnectionReset,
        ConnectionAborted,
        DatagramTooLarge,
        NameUnresolvable,
        TemporaryResolverFailure,
        PermanentResolverFailure
    ]
);
same_enum!(LIpAddressFamily, IpAddressFamily, [Ipv4, Ipv6]);
same_enum!(LShutdownType, ShutdownType, [Receive, Send, Both]);
same_record!(LIpv4SocketAddress, Ipv4SocketAddress, [port, address]);
same_record!(
    LIpv6SocketAddress,
    Ipv6SocketAddress,
    [port, flow_info, address, scope_id]
);

impl From<LIpAddress> for IpAddress {
    fn from(a: LIpAddress) -> Self {
        match a {
            LIpAddress::Ipv4(a) => Self::Ipv4(a),
            LIpAddress::Ipv6(a) => Self::Ipv6(a),
        }
    }
}

impl From<LIpSocketAddress> for IpSocketAddress {
    fn from(a: LIpSocketAddress) -> Self {
        match a {
            LIpSocketAddress::Ipv4(a) => Self::Ipv4(a.into()),
            LIpSocketAddress::Ipv6(a) => Self::Ipv6(a.into()),
        }
    }
}

impl From<IpSocketAddress> for LIpSocketAddress {
    fn from(a: IpSocketAddress) -> Self {
        match a {
            IpSocketAddress::Ipv4(a) => Self::Ipv4(a.into()),
            IpSocketAddress::Ipv6(a) => Self::Ipv6(a.into()),
        }
    }
}

impl From<LIncomingDatagram> for IncomingDatagram {
    fn from(d: LIncomingDatagram) -> Self {
        Self {
            data: d.data,
            remote_address: d.remote_address.into(),
        }
    }
}

impl From<OutgoingDatagram> for LOutgoingDatagram {
    fn from(d: OutgoingDatagram) -> Self {
        Self {
            data: d.data,
            remote_address: d.remote_address.map(Into::into),
        }
    }
}

/// `ipv6-only` was dropped from WASI 0.2; Spin traps on it, naming the call.
fn ipv6_only_dropped() -> SocketError {
    SocketError::trap(wasmtime::format_err!("ipv6-only API no longer supported"))
}

impl sockets::network::Host for WasiSocketsCtxView<'_> {
    fn convert_error_code(&mut self, err: SocketError) -> wasmtime::Result<SocketErrorCode> {
        Ok(latest::sockets::network::Host::convert_error_code(self, err)?.into())
    }
}

impl sockets::network::HostNetwork for WasiSocketsCtxView<'_> {
    fn drop(&mut self, rep: Resource<Network>) -> wasmtime::Result<()> {
        latest::sockets::network::HostNetwork::drop(self, rep)
    }
}

impl sockets::instance_network::Host for WasiSocketsCtxView<'_> {
    fn instance_network(&mut self) -> wasmtime::Result<Resource<Network>> {
        latest::sockets::instance_network::Host::instance_network(self)
    }
}

impl sockets::ip_name_lookup::Host for WasiSocketsCtxView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        latest::sockets::ip_name_lookup::Host::resolve_addresses(self, network, name)
    }
}

impl sockets::ip_name_lookup::HostResolveAddressStream for WasiSocketsCtxView<'_> {
    fn resolve_next_address(
        &mut self,
        self_: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        Ok(
            latest::sockets::ip_name_lookup::HostResolveAddressStream::resolve_next_address(
                self, self_,
            )?
            .map(Into::into),
        )
    }

    fn subscribe(
        &mut self,
        self_: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        latest::sockets::ip_name_lookup::HostResolveAddressStream::subscribe(self, self_)
    }

    fn drop(&mut self, rep: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        latest::sockets::ip_name_lookup::HostResolveAddressStream::drop(self, rep)
    }
}

impl sockets::tcp_create_socket::Host for WasiSocketsCtxView<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        latest::sockets::tcp_create_socket::Host::create_tcp_socket(self, address_family.into())
    }
}

impl sockets::tcp::Host for WasiSocketsCtxView<'_> {}

impl sockets::tcp::HostTcpSocket for WasiSocketsCtxView<'_> {
    async fn start_bind(
        &mut self,
        self_: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::start_bind(self, self_, network, local_address.into())
            .await
    }

    fn finish_bind(&mut self, self_: Resource<TcpSocket>) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::finish_bind(self, self_)
    }

    fn start_connect(
        &mut self,
        self_: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::start_connect(
            self,
            self_,
            network,
            remote_address.into(),
        )
    }

    fn finish_connect(
        &mut self,
        self_: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        latest::sockets::tcp::HostTcpSocket::finish_connect(self, self_)
    }

    async fn start_listen(&mut self, self_: Resource<TcpSocket>) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::start_listen(self, self_).await
    }

    fn finish_listen(&mut self, self_: Resource<TcpSocket>) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::finish_listen(self, self_)
    }

    #[allow(clippy::type_complexity)]
    fn accept(
        &mut self,
        self_: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        latest::sockets::tcp::HostTcpSocket::accept(self, self_)
    }

    fn local_address(&mut self, self_: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(latest::sockets::tcp::HostTcpSocket::local_address(self, self_)?.into())
    }

    fn remote_address(&mut self, self_: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(latest::sockets::tcp::HostTcpSocket::remote_address(self, self_)?.into())
    }

    fn is_listening(&mut self, self_: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        latest::sockets::tcp::HostTcpSocket::is_listening(self, self_)
    }

    fn address_family(&mut self, self_: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(latest::sockets::tcp::HostTcpSocket::address_family(self, self_)?.into())
    }

    fn ipv6_only(&mut self, _self_: Resource<TcpSocket>) -> SocketResult<bool> {
        Err(ipv6_only_dropped())
    }

    fn set_ipv6_only(&mut self, _self_: Resource<TcpSocket>, _value: bool) -> SocketResult<()> {
        Err(ipv6_only_dropped())
    }

    fn set_listen_backlog_size(
        &mut self,
        self_: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_listen_backlog_size(self, self_, value)
    }

    fn keep_alive_enabled(&mut self, self_: Resource<TcpSocket>) -> SocketResult<bool> {
        latest::sockets::tcp::HostTcpSocket::keep_alive_enabled(self, self_)
    }

    fn set_keep_alive_enabled(
        &mut self,
        self_: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_keep_alive_enabled(self, self_, value)
    }

    fn keep_alive_idle_time(&mut self, self_: Resource<TcpSocket>) -> SocketResult<u64> {
        latest::sockets::tcp::HostTcpSocket::keep_alive_idle_time(self, self_)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        self_: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_keep_alive_idle_time(self, self_, value)
    }

    fn keep_alive_interval(&mut self, self_: Resource<TcpSocket>) -> SocketResult<u64> {
        latest::sockets::tcp::HostTcpSocket::keep_alive_interval(self, self_)
    }

    fn set_keep_alive_interval(
        &mut self,
        self_: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_keep_alive_interval(self, self_, value)
    }

    fn keep_alive_count(&mut self, self_: Resource<TcpSocket>) -> SocketResult<u32> {
        latest::sockets::tcp::HostTcpSocket::keep_alive_count(self, self_)
    }

    fn set_keep_alive_count(&mut self, self_: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_keep_alive_count(self, self_, value)
    }

    fn hop_limit(&mut self, self_: Resource<TcpSocket>) -> SocketResult<u8> {
        latest::sockets::tcp::HostTcpSocket::hop_limit(self, self_)
    }

    fn set_hop_limit(&mut self, self_: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_hop_limit(self, self_, value)
    }

    fn receive_buffer_size(&mut self, self_: Resource<TcpSocket>) -> SocketResult<u64> {
        latest::sockets::tcp::HostTcpSocket::receive_buffer_size(self, self_)
    }

    fn set_receive_buffer_size(
        &mut self,
        self_: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_receive_buffer_size(self, self_, value)
    }

    fn send_buffer_size(&mut self, self_: Resource<TcpSocket>) -> SocketResult<u64> {
        latest::sockets::tcp::HostTcpSocket::send_buffer_size(self, self_)
    }

    fn set_send_buffer_size(&mut self, self_: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_send_buffer_size(self, self_, value)
    }

    fn subscribe(&mut self, self_: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        latest::sockets::tcp::HostTcpSocket::subscribe(self, self_)
    }

    fn shutdown(
        &mut self,
        self_: Resource<TcpSocket>,
        shutdown_type: ShutdownType,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::shutdown(self, self_, shutdown_type.into())
    }

    fn drop(&mut self, rep: Resource<TcpSocket>) -> wasmtime::Result<()> {
        latest::sockets::tcp::HostTcpSocket::drop(self, rep)
    }
}

impl sockets::udp_create_socket::Host for WasiSocketsCtxView<'_> {
    async fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        latest::sockets::udp_create_socket::Host::create_udp_socket(self, address_family.into())
            .await
    }
}

impl sockets::udp::Host for WasiSocketsCtxView<'_> {}

impl sockets::udp::HostUdpSocket for WasiSocketsCtxView<'_> {
    async fn start_bind(
        &mut self,
        self_: Resource<UdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        latest::sockets::udp::HostUdpSocket::start_bind(self, self_, network, local_address.into())
            .await
    }

    fn finish_bind(&mut self, self_: Resource<UdpSocket>) -> SocketResult<()> {
        latest::sockets::udp::HostUdpSocket::finish_bind(self, self_)
    }

    async fn stream(
        &mut self,
        self_: Resource<UdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> SocketResult<(
        Resource<IncomingDatagramStream>,
        Resource<OutgoingDatagramStream>,
    )> {
        latest::sockets::udp::HostUdpSocket::stream(self, self_, remote_address.map(Into::into))
            .await
    }

    fn local_address(&mut self, self_: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(latest::sockets::udp::HostUdpSocket::local_address(self, self_)?.into())
    }

    fn remote_address(&mut self, self_: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(latest::sockets::udp::HostUdpSocket::remote_address(self, self_)?.into())
    }

    fn address_family(&mut self, self_: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(latest::sockets::udp::HostUdpSocket::address_family(self, self_)?.into())
    }

    fn ipv6_only(&mut self, _self_: Resource<UdpSocket>) -> SocketResult<bool> {
        Err(ipv6_only_dropped())
    }

    fn set_ipv6_only(&mut self, _self_: Resource<UdpSocket>, _value: bool) -> SocketResult<()> {
        Err(ipv6_only_dropped())
    }

    fn unicast_hop_limit(&mut self, self_: Resource<UdpSocket>) -> SocketResult<u8> {
        latest::sockets::udp::HostUdpSocket::unicast_hop_limit(self, self_)
    }

    fn set_unicast_hop_limit(&mut self, self_: Resource<UdpSocket>, value: u8) -> SocketResult<()> {
        latest::sockets::udp::HostUdpSocket::set_unicast_hop_limit(self, self_, value)
    }

    fn receive_buffer_size(&mut self, self_: Resource<UdpSocket>) -> SocketResult<u64> {
        latest::sockets::udp::HostUdpSocket::receive_buffer_size(self, self_)
    }

    fn set_receive_buffer_size(
        &mut self,
        self_: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        latest::sockets::udp::HostUdpSocket::set_receive_buffer_size(self, self_, value)
    }

    fn send_buffer_size(&mut self, self_: Resource<UdpSocket>) -> SocketResult<u64> {
        latest::sockets::udp::HostUdpSocket::send_buffer_size(self, self_)
    }

    fn set_send_buffer_size(&mut self, self_: Resource<UdpSocket>, value: u64) -> SocketResult<()> {
        latest::sockets::udp::HostUdpSocket::set_send_buffer_size(self, self_, value)
    }

    fn subscribe(&mut self, self_: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        latest::sockets::udp::HostUdpSocket::subscribe(self, self_)
    }

    fn drop(&mut self, rep: Resource<UdpSocket>) -> wasmtime::Result<()> {
        latest::sockets::udp::HostUdpSocket::drop(self, rep)
    }
}

impl sockets::udp::HostIncomingDatagramStream for WasiSocketsCtxView<'_> {
    fn receive(
        &mut self,
        self_: Resource<IncomingDatagramStream>,
        max_results: u64,
    ) -> SocketResult<Vec<IncomingDatagram>> {
        Ok(
            latest::sockets::udp::HostIncomingDatagramStream::receive(self, self_, max_results)?
                .into_iter()
                .map(Into::into)
                .collect(),
        )
    }

    fn subscribe(
        &mut self,
        self_: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        latest::sockets::udp::HostIncomingDatagramStream::subscribe(self, self_)
    }

    fn drop(&mut self, rep: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        latest::sockets::udp::HostIncomingDatagramStream::drop(self, rep)
    }
}

impl sockets::udp::HostOutgoingDatagramStream for WasiSocketsCtxView<'_> {
    fn check_send(&mut self, self_: Resource<OutgoingDatagramStream>) -> SocketResult<u64> {
        latest::sockets::udp::HostOutgoingDatagramStream::check_send(self, self_)
    }

    fn send(
        &mut self,
        self_: Resource<OutgoingDatagramStream>,
        datagrams: Vec<OutgoingDatagram>,
    ) -> SocketResult<u64> {
        let datagrams = datagrams.into_iter().map(Into::into).collect();
        latest::sockets::udp::HostOutgoingDatagramStream::send(self, self_, datagrams)
    }

    fn subscribe(
        &mut self,
        self_: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        latest::sockets::udp::HostOutgoingDatagramStream::subscribe(self, self_)
    }

    async fn drop(&mut self, rep: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        latest::sockets::udp::HostOutgoingDatagramStream::drop(self, rep).await
    }
}

/// Kept for the imports above that only some configurations use.
#[allow(dead_code)]
fn _unused(_: TrappableError<()>) {}
