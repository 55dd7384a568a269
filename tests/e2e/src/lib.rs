//! End-to-end tests live in `tests/`: they drive the platform the way people and the course's
//! client do, through spin.toml under runtime-host and the converter binary, against real
//! MariaDB, RabbitMQ, Redis, a MongoDB-wire server and Mailpit.
