//! `fermyon:spin/variables@2.0.0` and `wasi:config/store@0.2.0-draft-2024-09-27`: a component
//! reads only its own `[component.x.variables]`, through either. Errors carry Spin's texts; the
//! config store answers a missing or invalid name with `none`, as Spin does.

use super::HostState;
use super::bindings::fermyon::spin2_0_0::variables::{Error, Host};
use super::bindings::wasi::config::store;

impl Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if let Err(reason) = crate::template::validate_name(&name) {
            return Ok(Err(Error::InvalidName(format!("{name:?}: {reason}"))));
        }
        Ok(match self.component.variables.get(&name) {
            Some(value) => Ok(value.to_owned()),
            None => Err(Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                &*self.component.id
            ))),
        })
    }
}

impl store::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(self.component.variables.get(&key).map(str::to_owned)))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        let variables = &self.component.variables;
        Ok(Ok(variables
            .names()
            .filter_map(|name| Some((name.to_owned(), variables.get(name)?.to_owned())))
            .collect()))
    }
}
