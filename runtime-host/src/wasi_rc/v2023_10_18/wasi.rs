//! cli, clocks, random, io, filesystem and sockets of `0.2.0-rc-2023-10-18`, forwarded to WASI 0.2.
//! Calls WASI 0.2 dropped trap naming the call, as on Spin.

use wasmtime::component::{Resource, ResourceTable};
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
    AccessType, Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    MetadataHashValue, Modes, NewTimestamp, OpenFlags, PathFlags,
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
use latest::sockets::udp::UdpSocket;
use latest::sockets::{ip_name_lookup::ResolveAddressStream, tcp::TcpSocket};
use sockets::network::{
    ErrorCode as SocketErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress,
};
use sockets::tcp::ShutdownType;
use sockets::udp::Datagram;

type Datetime = clocks::wall_clock::Datetime;
type LDatetime = latest::clocks::wall_clock::Datetime;
type LShutdownType = latest::sockets::tcp::ShutdownType;

// ---- io ----

impl io::poll::Host for ResourceTable {
    async fn poll_list(&mut self, list: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        latest::io::poll::Host::poll(self, list).await
    }

    async fn poll_one(&mut self, rep: Resource<DynPollable>) -> wasmtime::Result<()> {
        latest::io::poll::HostPollable::block(self, rep).await
    }
}

impl io::poll::HostPollable for ResourceTable {
    fn drop(&mut self, rep: Resource<DynPollable>) -> wasmtime::Result<()> {
        latest::io::poll::HostPollable::drop(self, rep)
    }
}

impl io::streams::HostError for ResourceTable {
    fn to_debug_string(&mut self, self_: Resource<IoError>) -> wasmtime::Result<String> {
        latest::io::error::HostError::to_debug_string(self, self_)
    }

    fn drop(&mut self, rep: Resource<IoError>) -> wasmtime::Result<()> {
        latest::io::error::HostError::drop(self, rep)
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

    fn forward(
        &mut self,
        _self_: Resource<DynOutputStream>,
        _src: Resource<DynInputStream>,
    ) -> StreamResult<u64> {
        Err(StreamError::Trap(dropped("forward")))
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

    fn subscribe(&mut self, when: u64, absolute: bool) -> wasmtime::Result<Resource<DynPollable>> {
        if absolute {
            latest::clocks::monotonic_clock::Host::subscribe_instant(self, when)
        } else {
            latest::clocks::monotonic_clock::Host::subscribe_duration(self, when)
        }
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
        // Dropped in WASI 0.2, which never created files with other modes.
        _modes: Modes,
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

    fn access_at(
        &mut self,
        _self_: Resource<Descriptor>,
        _path_flags: PathFlags,
        _path: String,
        _type_: AccessType,
    ) -> FsResult<()> {
        Err(FsError::trap(dropped("access-at")))
    }

    fn change_file_permissions_at(
        &mut self,
        _self_: Resource<Descriptor>,
        _path_flags: PathFlags,
        _path: String,
        _modes: Modes,
    ) -> FsResult<()> {
        Err(FsError::trap(dropped("change-file-permissions-at")))
    }

    fn change_directory_permissions_at(
        &mut self,
        _self_: Resource<Descriptor>,
        _path_flags: PathFlags,
        _path: String,
        _modes: Modes,
    ) -> FsResult<()> {
        Err(FsError::trap(dropped("change-directory-permissions-at")))
    }

    fn lock_shared(&mut self, _self_: Resource<Descriptor>) -> FsResult<()> {
        Err(FsError::trap(dropped("lock-shared")))
    }

    fn lock_exclusive(&mut self, _self_: Resource<Descriptor>) -> FsResult<()> {
        Err(FsError::trap(dropped("lock-exclusive")))
    }

    fn try_lock_shared(&mut self, _self_: Resource<Descriptor>) -> FsResult<()> {
        Err(FsError::trap(dropped("try-lock-shared")))
    }

    fn try_lock_exclusive(&mut self, _self_: Resource<Descriptor>) -> FsResult<()> {
        Err(FsError::trap(dropped("try-lock-exclusive")))
    }

    fn unlock(&mut self, _self_: Resource<Descriptor>) -> FsResult<()> {
        Err(FsError::trap(dropped("unlock")))
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

/// A call this snapshot had and WASI 0.2 dropped: Spin traps on it, naming the call.
fn dropped(call: &str) -> wasmtime::Error {
    wasmtime::format_err!("{call} API no longer supported")
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
        // WASI 0.2 dropped both; Spin ignores them too.
        _address_family: Option<IpAddressFamily>,
        _include_unavailable: bool,
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

    fn address_family(&mut self, self_: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(latest::sockets::tcp::HostTcpSocket::address_family(self, self_)?.into())
    }

    fn ipv6_only(&mut self, _self_: Resource<TcpSocket>) -> SocketResult<bool> {
        Err(SocketError::trap(dropped("ipv6-only")))
    }

    fn set_ipv6_only(&mut self, _self_: Resource<TcpSocket>, _value: bool) -> SocketResult<()> {
        Err(SocketError::trap(dropped("ipv6-only")))
    }

    fn set_listen_backlog_size(
        &mut self,
        self_: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_listen_backlog_size(self, self_, value)
    }

    fn keep_alive(&mut self, self_: Resource<TcpSocket>) -> SocketResult<bool> {
        latest::sockets::tcp::HostTcpSocket::keep_alive_enabled(self, self_)
    }

    fn set_keep_alive(&mut self, self_: Resource<TcpSocket>, value: bool) -> SocketResult<()> {
        latest::sockets::tcp::HostTcpSocket::set_keep_alive_enabled(self, self_, value)
    }

    fn no_delay(&mut self, _self_: Resource<TcpSocket>) -> SocketResult<bool> {
        Err(SocketError::trap(dropped("no-delay")))
    }

    fn set_no_delay(&mut self, _self_: Resource<TcpSocket>, _value: bool) -> SocketResult<()> {
        Err(SocketError::trap(dropped("no-delay")))
    }

    fn unicast_hop_limit(&mut self, self_: Resource<TcpSocket>) -> SocketResult<u8> {
        latest::sockets::tcp::HostTcpSocket::hop_limit(self, self_)
    }

    fn set_unicast_hop_limit(&mut self, self_: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
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

    // This snapshot's connect/receive/send became WASI 0.2's datagram streams. runtime-host
    // lets components reach no UDP address (through either), so instead of emulating the old
    // state machine on top of the streams these answer as a socket that may not connect.
    fn start_connect(
        &mut self,
        _self_: Resource<UdpSocket>,
        _network: Resource<Network>,
        _remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        Err(LSocketErrorCode::AccessDenied.into())
    }

    fn finish_connect(&mut self, _self_: Resource<UdpSocket>) -> SocketResult<()> {
        Err(LSocketErrorCode::NotInProgress.into())
    }

    fn receive(
        &mut self,
        _self_: Resource<UdpSocket>,
        _max_results: u64,
    ) -> SocketResult<Vec<Datagram>> {
        Err(LSocketErrorCode::InvalidState.into())
    }

    fn send(
        &mut self,
        _self_: Resource<UdpSocket>,
        _datagrams: Vec<Datagram>,
    ) -> SocketResult<u64> {
        Err(LSocketErrorCode::InvalidState.into())
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
        Err(SocketError::trap(dropped("ipv6-only")))
    }

    fn set_ipv6_only(&mut self, _self_: Resource<UdpSocket>, _value: bool) -> SocketResult<()> {
        Err(SocketError::trap(dropped("ipv6-only")))
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
