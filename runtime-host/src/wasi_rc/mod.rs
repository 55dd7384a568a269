//! The WASI 0.2.0 release candidates that Spin still serves: `0.2.0-rc-2023-10-18` (imported by
//! components built with spin-sdk 2.0) and `0.2.0-rc-2023-11-10` (spin-sdk 2.1 and 2.2).
//!
//! Their WIT is in `wit/deps/*-0.2.0-rc-*`, typed from the published definitions. Each snapshot
//! gets its own bindings, and every call is forwarded to wasmtime-wasi's and
//! wasmtime-wasi-http's WASI 0.2 implementations, on the same resources: a pollable, a stream or
//! a descriptor is one object whichever snapshot the component reaches it through, so a
//! component that mixes snapshots (an old SDK beside a newer std) works. Calls a snapshot had
//! and WASI 0.2 dropped behave as on Spin: they trap, naming the call.
//!
//! The HTTP trigger runs a component that exports either snapshot's `incoming-handler`
//! ([`HttpHandler`]); outgoing requests go through the same allowed-hosts check, chaining and
//! clients as WASI 0.2 ones.

#[macro_use]
mod convert;
pub mod v2023_10_18;
pub mod v2023_11_10;

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;

/// Adds both snapshots' interfaces to `linker`, beside WASI 0.2.
pub fn add_to_linker<T: WasiView + WasiHttpView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    v2023_10_18::add_to_linker(linker)?;
    v2023_11_10::add_to_linker(linker)?;
    Ok(())
}

/// `wasi:io` is implemented on the resource table alone.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

fn io_table<T: WasiView>(state: &mut T) -> &mut ResourceTable {
    state.ctx().table
}
