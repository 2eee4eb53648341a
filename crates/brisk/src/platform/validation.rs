//! Field-level validation shared by every module: [`FieldError`] names one
//! bad field of a request, [`Invalid`] is the domain error carrying them
//! (a 422 `validation_failed` at the HTTP edge), and [`Validator`] collects
//! them so that one answer lists every field at fault, not only the first.

use serde::Serialize;

/// One invalid field of a request, as `{field, message}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Well-formed input that breaks a rule; lists each field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} field(s) invalid", .0.len())]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// One bad field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid(vec![FieldError::new(field, message)])
    }
}

/// Collects field errors; turns into a 422 if any were found.
#[derive(Default, Debug)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
    pub fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.error(field, message);
        }
    }
    /// A required single-line text: trimmed non-empty, at most `max`
    /// characters, no control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.error(field, "must not be empty");
        } else {
            self.optional_text(field, value, max);
        }
    }
    /// Optional text: at most `max` characters, no control characters except
    /// tab and newlines (for notes).
    pub fn optional_text(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.error(field, format!("must be at most {max} characters"));
        } else if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.error(field, "must not contain control characters");
        }
    }
    /// An e-mail address: `local@domain.tld`, at most 254 characters, no
    /// whitespace or control characters.
    pub fn email(&mut self, field: &str, email: &str) {
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            });
        self.check(valid, field, "must be an e-mail address");
    }
    /// The fields found at fault, if any.
    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}
