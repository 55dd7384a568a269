//! WASI `0.2.0-rc-2023-11-10`, which components built with spin-sdk 2.1 and 2.2 import. It is
//! WASI 0.2.0 but for a handful of calls, so nearly everything forwards as is: only types are
//! converted between the two sets of bindings.

mod http;
mod wasi;

use wasmtime::component::Linker;
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
use wasmtime_wasi_http::{WasiHttp, WasiHttpView};

use super::{HasIo, io_table};

mod latest {
    pub use wasmtime_wasi::p2::bindings::*;
    pub use wasmtime_wasi_http::p2::bindings::http;
}

pub mod bindings {
    use super::latest;

    wasmtime::component::bindgen!({
        path: "../wit",
        inline: "
            package vid2mp3:rc-2023-11-10;

            world proxy {
                import wasi:clocks/wall-clock@0.2.0-rc-2023-11-10;
                import wasi:clocks/monotonic-clock@0.2.0-rc-2023-11-10;
                import wasi:filesystem/types@0.2.0-rc-2023-11-10;
                import wasi:filesystem/preopens@0.2.0-rc-2023-11-10;
                import wasi:sockets/instance-network@0.2.0-rc-2023-11-10;
                import wasi:sockets/ip-name-lookup@0.2.0-rc-2023-11-10;
                import wasi:sockets/network@0.2.0-rc-2023-11-10;
                import wasi:sockets/tcp-create-socket@0.2.0-rc-2023-11-10;
                import wasi:sockets/tcp@0.2.0-rc-2023-11-10;
                import wasi:sockets/udp-create-socket@0.2.0-rc-2023-11-10;
                import wasi:sockets/udp@0.2.0-rc-2023-11-10;
                import wasi:random/random@0.2.0-rc-2023-11-10;
                import wasi:random/insecure@0.2.0-rc-2023-11-10;
                import wasi:random/insecure-seed@0.2.0-rc-2023-11-10;
                import wasi:io/error@0.2.0-rc-2023-11-10;
                import wasi:io/poll@0.2.0-rc-2023-11-10;
                import wasi:io/streams@0.2.0-rc-2023-11-10;
                import wasi:cli/environment@0.2.0-rc-2023-11-10;
                import wasi:cli/exit@0.2.0-rc-2023-11-10;
                import wasi:cli/stdin@0.2.0-rc-2023-11-10;
                import wasi:cli/stdout@0.2.0-rc-2023-11-10;
                import wasi:cli/stderr@0.2.0-rc-2023-11-10;
                import wasi:cli/terminal-input@0.2.0-rc-2023-11-10;
                import wasi:cli/terminal-output@0.2.0-rc-2023-11-10;
                import wasi:cli/terminal-stdin@0.2.0-rc-2023-11-10;
                import wasi:cli/terminal-stdout@0.2.0-rc-2023-11-10;
                import wasi:cli/terminal-stderr@0.2.0-rc-2023-11-10;
                import wasi:http/types@0.2.0-rc-2023-11-10;
                import wasi:http/outgoing-handler@0.2.0-rc-2023-11-10;
                export wasi:http/incoming-handler@0.2.0-rc-2023-11-10;
            }
        ",
        world: "vid2mp3:rc-2023-11-10/proxy",
        // What is async in WASI 0.2's implementation is async here.
        imports: {
            "wasi:io/poll.poll": async | trappable,
            "wasi:io/poll.[method]pollable.block": async | trappable,
            "wasi:io/poll.[method]pollable.ready": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-read": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-skip": async | trappable,
            "wasi:io/streams.[drop]input-stream": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-splice": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-and-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-zeroes-and-flush": async | trappable,
            "wasi:io/streams.[drop]output-stream": async | trappable,
            "wasi:filesystem/types.[method]descriptor.advise": async | trappable,
            "wasi:filesystem/types.[method]descriptor.create-directory-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.get-flags": async | trappable,
            "wasi:filesystem/types.[method]descriptor.get-type": async | trappable,
            "wasi:filesystem/types.[method]descriptor.is-same-object": async | trappable,
            "wasi:filesystem/types.[method]descriptor.link-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.metadata-hash": async | trappable,
            "wasi:filesystem/types.[method]descriptor.metadata-hash-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.open-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.read": async | trappable,
            "wasi:filesystem/types.[method]descriptor.read-directory": async | trappable,
            "wasi:filesystem/types.[method]descriptor.readlink-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.remove-directory-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.rename-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.set-size": async | trappable,
            "wasi:filesystem/types.[method]descriptor.set-times": async | trappable,
            "wasi:filesystem/types.[method]descriptor.set-times-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.stat": async | trappable,
            "wasi:filesystem/types.[method]descriptor.stat-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.symlink-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.sync": async | trappable,
            "wasi:filesystem/types.[method]descriptor.sync-data": async | trappable,
            "wasi:filesystem/types.[method]descriptor.unlink-file-at": async | trappable,
            "wasi:filesystem/types.[method]descriptor.write": async | trappable,
            "wasi:filesystem/types.[method]directory-entry-stream.read-directory-entry": async | trappable,
            "wasi:sockets/udp-create-socket.create-udp-socket": async | trappable,
            "wasi:sockets/tcp.[method]tcp-socket.start-bind": async | trappable,
            "wasi:sockets/tcp.[method]tcp-socket.start-listen": async | trappable,
            "wasi:sockets/udp.[method]udp-socket.start-bind": async | trappable,
            "wasi:sockets/udp.[method]udp-socket.stream": async | trappable,
            "wasi:sockets/udp.[drop]outgoing-datagram-stream": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        require_store_data_send: true,
        trappable_error_type: {
            "wasi:io/streams@0.2.0-rc-2023-11-10.stream-error" => wasmtime_wasi::p2::StreamError,
            "wasi:filesystem/types@0.2.0-rc-2023-11-10.error-code" => wasmtime_wasi::p2::FsError,
            "wasi:sockets/network@0.2.0-rc-2023-11-10.error-code" => wasmtime_wasi::p2::SocketError,
            "wasi:http/types@0.2.0-rc-2023-11-10.error-code" => wasmtime_wasi_http::p2::HttpError,
            "wasi:http/types@0.2.0-rc-2023-11-10.header-error" => wasmtime_wasi_http::p2::HeaderError,
        },
        // The same host objects as WASI 0.2's.
        with: {
            "wasi:io/poll.pollable": latest::io::poll::Pollable,
            "wasi:io/streams.input-stream": latest::io::streams::InputStream,
            "wasi:io/streams.output-stream": latest::io::streams::OutputStream,
            "wasi:io/error.error": latest::io::error::Error,
            "wasi:filesystem/types.directory-entry-stream": latest::filesystem::types::DirectoryEntryStream,
            "wasi:filesystem/types.descriptor": latest::filesystem::types::Descriptor,
            "wasi:cli/terminal-input.terminal-input": latest::cli::terminal_input::TerminalInput,
            "wasi:cli/terminal-output.terminal-output": latest::cli::terminal_output::TerminalOutput,
            "wasi:sockets/tcp.tcp-socket": latest::sockets::tcp::TcpSocket,
            "wasi:sockets/udp.udp-socket": latest::sockets::udp::UdpSocket,
            "wasi:sockets/udp.incoming-datagram-stream": latest::sockets::udp::IncomingDatagramStream,
            "wasi:sockets/udp.outgoing-datagram-stream": latest::sockets::udp::OutgoingDatagramStream,
            "wasi:sockets/network.network": latest::sockets::network::Network,
            "wasi:sockets/ip-name-lookup.resolve-address-stream": latest::sockets::ip_name_lookup::ResolveAddressStream,
            "wasi:http/types.outgoing-body": latest::http::types::OutgoingBody,
            "wasi:http/types.future-incoming-response": latest::http::types::FutureIncomingResponse,
            "wasi:http/types.outgoing-response": latest::http::types::OutgoingResponse,
            "wasi:http/types.future-trailers": latest::http::types::FutureTrailers,
            "wasi:http/types.incoming-body": latest::http::types::IncomingBody,
            "wasi:http/types.incoming-response": latest::http::types::IncomingResponse,
            "wasi:http/types.response-outparam": latest::http::types::ResponseOutparam,
            "wasi:http/types.outgoing-request": latest::http::types::OutgoingRequest,
            "wasi:http/types.incoming-request": latest::http::types::IncomingRequest,
            "wasi:http/types.fields": latest::http::types::Fields,
            "wasi:http/types.request-options": latest::http::types::RequestOptions,
        },
    });
}

pub use bindings::{Proxy, ProxyPre};

use bindings::wasi::{
    cli0_2_0_rc_2023_11_10 as cli, clocks0_2_0_rc_2023_11_10 as clocks,
    filesystem0_2_0_rc_2023_11_10 as filesystem, http0_2_0_rc_2023_11_10 as http_types,
    io0_2_0_rc_2023_11_10 as io, random0_2_0_rc_2023_11_10 as random,
    sockets0_2_0_rc_2023_11_10 as sockets,
};

pub fn add_to_linker<T: WasiView + WasiHttpView + 'static>(
    l: &mut Linker<T>,
) -> wasmtime::Result<()> {
    io::error::add_to_linker::<T, HasIo>(l, io_table)?;
    io::poll::add_to_linker::<T, HasIo>(l, io_table)?;
    io::streams::add_to_linker::<T, HasIo>(l, io_table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    http_types::types::add_to_linker::<T, WasiHttp>(l, T::http)?;
    http_types::outgoing_handler::add_to_linker::<T, WasiHttp>(l, T::http)?;
    Ok(())
}
