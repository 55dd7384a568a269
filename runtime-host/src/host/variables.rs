//! `fermyon:spin/variables@2.0.0`: a component reads only its own `[component.x.variables]`.
//! Errors carry Spin's texts.

use super::HostState;
use super::bindings::fermyon::spin2_0_0::variables::{Error, Host};

impl Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if let Err(reason) = crate::variables::validate_name(&name) {
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
