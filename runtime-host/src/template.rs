//! `{{ name }}` templates (component variables, `allowed_outbound_hosts` entries, Redis
//! addresses) and Spin's rule for variable names. What a template refers to is resolved
//! elsewhere ([`crate::variables`]); here only its syntax.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unclosed '{{{{' in template {0:?}")]
    Unclosed(String),
    #[error("template {template:?} refers to invalid name {name:?}: {reason}")]
    Name {
        template: String,
        name: String,
        reason: String,
    },
    #[error("template refers to undefined variable {0:?}")]
    Undefined(String),
}

/// Spin's rule for variable names, checked in Spin's order and explained in Spin's words (a
/// component that asks for a bad name gets this text in `invalid-name`): lowercase ASCII
/// letters, digits and underscores, starting with a letter, ending with a letter or digit, no
/// double underscore.
pub fn validate_name(name: &str) -> Result<(), String> {
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return Err("must not be empty".into());
    };
    if let Some(invalid) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "invalid character {invalid:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ));
    }
    if !first.is_ascii_lowercase() {
        return Err("must start with a lowercase ASCII letter".into());
    }
    if !last.is_ascii_alphanumeric() {
        return Err("must end with a lowercase ASCII letter or digit".into());
    }
    if name.contains("__") {
        return Err("must not contain multiple consecutive underscores".into());
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Reference(String),
}

/// A string with `{{ name }}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// A template whose references must be valid variable names.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let template = Self::parse_unchecked(text)?;
        for name in template.references() {
            validate_name(name).map_err(|reason| TemplateError::Name {
                template: text.to_owned(),
                name: name.to_owned(),
                reason,
            })?;
        }
        Ok(template)
    }

    /// A template checked only for its braces, as Spin parses `allowed_outbound_hosts` entries:
    /// a reference that names no variable fails when it is rendered.
    pub fn parse_unchecked(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed(text.to_owned()))?;
            parts.push(Part::Reference(after[..end].trim().to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Reference(n) => Some(n.as_str()),
            Part::Literal(_) => None,
        })
    }

    pub fn render(
        &self,
        mut lookup: impl FnMut(&str) -> Option<String>,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Reference(n) => {
                    out.push_str(&lookup(n).ok_or_else(|| TemplateError::Undefined(n.clone()))?)
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_reject_bad_names() {
        let cases: [(&str, Result<Vec<&str>, ()>); 6] = [
            ("plain", Ok(vec![])),
            ("{{ a }}", Ok(vec!["a"])),
            ("x{{a}}y{{ b_2 }}z", Ok(vec!["a", "b_2"])),
            ("{{ a", Err(())),
            ("{{ A }}", Err(())),
            ("{{ }}", Err(())),
        ];
        for (text, expected) in cases {
            let got = Template::parse(text)
                .map(|t| t.references().map(str::to_owned).collect::<Vec<_>>());
            match (got, expected) {
                (Ok(refs), Ok(exp)) => assert_eq!(refs, exp, "{text}"),
                (Err(_), Err(())) => {}
                (got, exp) => panic!("{text}: got {got:?}, expected {exp:?}"),
            }
        }
    }

    #[test]
    fn names_follow_spin_rules() {
        for ok in ["a", "abc_def", "a1"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "1a", "a-b", "a__b", "a_", "_a"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
