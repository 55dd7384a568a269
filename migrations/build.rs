//! `refinery::embed_migrations!` reads the SQL files while the crate compiles but tells cargo
//! nothing about them, so a new `V<n>__*.sql` would not be embedded until some Rust file changed.
//! Naming the folders here makes cargo rebuild when a file in them is added or edited.

fn main() {
    for service in ["auth", "gateway", "notifier"] {
        println!("cargo:rerun-if-changed={service}");
    }
}
