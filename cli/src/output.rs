//! Where output goes: results on stdout (the API's JSON with `--json`, text otherwise), human
//! messages and progress on stderr, so `vid2mp3 --json jobs | jq` always gets clean JSON.

use serde_json::Value;

#[derive(Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// One JSON document per line (several uploads make several lines).
    pub fn json_value(&self, value: &Value) {
        println!("{value}");
    }

    /// A result for people (only without `--json`).
    pub fn text(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    /// A message for people, always on stderr.
    pub fn note(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// `2026-11-28T04:50:12.345Z` → `2026-11-28 04:50:12`.
pub fn short_time(rfc3339: &str) -> String {
    rfc3339.replace('T', " ").chars().take(19).collect()
}

pub fn human_bytes(n: Option<u64>) -> String {
    n.map(|n| indicatif::HumanBytes(n).to_string())
        .unwrap_or_else(|| "-".into())
}

/// The jobs table: id, status, progress, name, size, created.
pub fn jobs_table(jobs: &[Value]) -> String {
    let rows: Vec<[String; 6]> = jobs
        .iter()
        .map(|j| {
            [
                j["id"].as_str().unwrap_or("?").to_owned(),
                j["status"].as_str().unwrap_or("?").to_owned(),
                format!("{}%", j["progress_percent"].as_u64().unwrap_or(0)),
                j["original_name"].as_str().unwrap_or("").to_owned(),
                human_bytes(j["video_size_bytes"].as_u64()),
                short_time(j["created_at"].as_str().unwrap_or("")),
            ]
        })
        .collect();
    let header = ["ID", "STATUS", "PROGRESS", "NAME", "SIZE", "CREATED"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            row.iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_has_a_header_and_aligned_rows() {
        let t = jobs_table(&[json!({
            "id": "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11", "status": "done", "progress_percent": 100,
            "original_name": "clip.mkv", "video_size_bytes": 2048, "created_at": "2026-11-28T04:50:12.345Z"
        })]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID "), "{t}");
        assert!(
            lines[1].contains("done") && lines[1].contains("100%") && lines[1].contains("clip.mkv")
        );
        assert!(lines[1].contains("2026-11-28 04:50:12"));
        assert_eq!(lines[0].find("STATUS"), lines[1].find("done"));
    }
}
