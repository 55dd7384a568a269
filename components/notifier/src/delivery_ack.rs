//! The delivery ack the converter's relay waits for before it acks the AMQP message:
//! `contracts::delivery_ack_key(message_id)`, set with a TTL. Its value says how the event ended,
//! for whoever looks; the relay needs only its presence.

use spin_sdk::redis::{Connection, RedisParameter};

/// Long enough for any relay to have seen it (it polls within seconds); short enough that acks
/// do not pile up in Redis.
pub const ACK_TTL_SECS: i64 = 24 * 60 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckValue {
    /// The email went out now.
    Sent,
    /// It had gone out before (a redelivery).
    Duplicate,
    /// The provider refused the email for good; it will not be sent.
    Rejected,
    /// The event could not be read; it will never be emailed.
    Poison,
}

impl AckValue {
    pub fn as_str(self) -> &'static str {
        match self {
            AckValue::Sent => "sent",
            AckValue::Duplicate => "duplicate",
            AckValue::Rejected => "rejected",
            AckValue::Poison => "poison",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("cannot open Redis for the delivery ack: {0}")]
    Connect(String),
    #[error("cannot write the delivery ack: {0}")]
    Write(String),
}

pub trait DeliveryAcks {
    fn ack(&self, message_id: &uuid::Uuid, value: AckValue) -> Result<(), AckError>;
}

/// The `SET key value EX ttl` arguments, apart from the command.
pub fn set_arguments(
    key_prefix: &str,
    message_id: &uuid::Uuid,
    value: AckValue,
) -> Vec<RedisParameter> {
    vec![
        RedisParameter::Binary(
            vid2mp3_contracts::messages::delivery_ack_key(key_prefix, message_id).into_bytes(),
        ),
        RedisParameter::Binary(value.as_str().as_bytes().to_vec()),
        RedisParameter::Binary(b"EX".to_vec()),
        RedisParameter::Int64(ACK_TTL_SECS),
    ]
}

/// Acks through Spin's Redis interface, connected on first use.
pub struct RedisAcks {
    url: String,
    key_prefix: String,
    connection: std::cell::OnceCell<Connection>,
}

impl RedisAcks {
    pub fn new(url: &str, key_prefix: &str) -> Self {
        RedisAcks {
            url: url.to_owned(),
            key_prefix: key_prefix.to_owned(),
            connection: std::cell::OnceCell::new(),
        }
    }

    fn connection(&self) -> Result<&Connection, AckError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection);
        }
        let connection =
            Connection::open(&self.url).map_err(|e| AckError::Connect(format!("{e:?}")))?;
        Ok(self.connection.get_or_init(|| connection))
    }
}

impl DeliveryAcks for RedisAcks {
    fn ack(&self, message_id: &uuid::Uuid, value: AckValue) -> Result<(), AckError> {
        self.connection()?
            .execute("SET", &set_arguments(&self.key_prefix, message_id, value))
            .map(|_| ())
            .map_err(|e| AckError::Write(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ack_is_the_contract_key_with_a_ttl() {
        let id: uuid::Uuid = "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11".parse().unwrap();
        let args = set_arguments("vid2mp3:", &id, AckValue::Poison);
        assert!(matches!(
            args.as_slice(),
            [
                RedisParameter::Binary(key),
                RedisParameter::Binary(value),
                RedisParameter::Binary(ex),
                RedisParameter::Int64(ttl),
            ] if key == b"vid2mp3:delivered:0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11"
                && value == b"poison"
                && ex == b"EX"
                && *ttl == 86_400
        ));
    }
}
