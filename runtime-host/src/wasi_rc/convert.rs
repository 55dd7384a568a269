//! Conversions between a snapshot's generated types and WASI 0.2's, where the two are the same
//! shape under different Rust names. Both sides are in scope under the names given.

/// `From` both ways between two enums with the same cases.
macro_rules! same_enum {
    ($a:ident, $b:ident, [$($case:ident),* $(,)?]) => {
        impl From<$a> for $b {
            fn from(value: $a) -> Self {
                match value {
                    $($a::$case => $b::$case,)*
                }
            }
        }
        impl From<$b> for $a {
            fn from(value: $b) -> Self {
                match value {
                    $($b::$case => $a::$case,)*
                }
            }
        }
    };
}

/// `From` both ways between two flags types with the same flags.
macro_rules! same_flags {
    ($a:ident, $b:ident, [$($flag:ident),* $(,)?]) => {
        impl From<$a> for $b {
            fn from(value: $a) -> Self {
                let mut out = $b::empty();
                $(if value.contains($a::$flag) { out |= $b::$flag; })*
                out
            }
        }
        impl From<$b> for $a {
            fn from(value: $b) -> Self {
                let mut out = $a::empty();
                $(if value.contains($b::$flag) { out |= $a::$flag; })*
                out
            }
        }
    };
}

/// `From` both ways between two records with the same fields (each converted with `into`).
macro_rules! same_record {
    ($a:ident, $b:ident, [$($field:ident),* $(,)?]) => {
        impl From<$a> for $b {
            fn from(value: $a) -> Self {
                $b { $($field: value.$field.into(),)* }
            }
        }
        impl From<$b> for $a {
            fn from(value: $b) -> Self {
                $a { $($field: value.$field.into(),)* }
            }
        }
    };
}
