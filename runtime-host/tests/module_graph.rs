//! runtime-host's top-level modules form no cycle: each uses only modules below it
//! (README.md, "Layering"). Read from the sources' `crate::` paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules named after `crate::` in `text` (`crate::a::b`, `crate::{a, b::c}`).
fn used_modules(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    // Comments name modules without using them.
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            used.insert(ident(rest));
            continue;
        };
        // Only the group's own items: `crate::{a, b::{c, d}}` uses a and b.
        let mut depth = 1;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 1 => {
                    used.insert(ident(&item));
                    item.clear();
                    continue;
                }
                _ => {}
            }
            if depth == 0 {
                break;
            }
            if depth == 1 {
                item.push(c);
            }
        }
        used.insert(ident(&item));
    }
    used.remove("");
    used
}

#[test]
fn the_top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a source file");
        graph.entry(module).or_default().extend(used_modules(&text));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    assert!(
        modules.contains("runtime") && modules.contains("http_trigger"),
        "{modules:?}"
    );
    for (module, uses) in graph.iter_mut() {
        uses.retain(|m| m != module && modules.contains(m));
    }
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    let cyclic: Vec<String> = graph
        .iter()
        .flat_map(|(m, uses)| uses.iter().map(move |u| (m, u)))
        .filter(|(m, u)| reaches(u, m))
        .map(|(m, u)| format!("{m} -> {u}"))
        .collect();
    assert!(
        cyclic.is_empty(),
        "these uses are part of a cycle among runtime-host's modules: {cyclic:?}"
    );
    // The runtime knows no trigger.
    let runtime = &graph["runtime"];
    for trigger in ["http_trigger", "redis_trigger", "app"] {
        assert!(!runtime.contains(trigger), "runtime uses {trigger}");
    }
}

#[test]
fn module_uses_are_read_from_paths_and_groups() {
    let text = "use crate::a::B;\nuse crate::{\n    b,\n    c::D, e::{self, F},\n};\n// crate::comment\nlet x = crate::g::h();";
    let found: Vec<String> = used_modules(text).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "e", "g"]);
}
