//! The SMTP transport: built once per process from `BRISK_SMTP_URL`, pooled
//! (connections are reused across jobs and closed when idle).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one SMTP step (connect, greeting, each command) may take. A
/// relay that stops answering fails the attempt after this, well inside the
/// default job lease (60 s), so the job is retried rather than taken over
/// while it still runs.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The URL's text stays out of the message: it may carry a password.
    #[error(
        "BRISK_SMTP_URL is not a usable SMTP URL (smtp://host:port or smtps://user:pass@host:465): {0}"
    )]
    Url(String),
    #[error(
        "BRISK_SMTP_FROM is not an e-mail address (such as \"Brisk <brisk@example.com>\"): {0}"
    )]
    From(String),
}

/// Sends messages from the configured address.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the credentials: never print it.
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

fn builder(url: &str) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, MailerError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("smtp" | "smtps")) {
        return Err(MailerError::Url("the scheme must be smtp or smtps".into()));
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|b| b.timeout(Some(STEP_TIMEOUT)))
        .map_err(|e| MailerError::Url(e.to_string()))
}

fn from_mailbox(from: &str) -> Result<Mailbox, MailerError> {
    from.trim()
        .parse::<Mailbox>()
        .map_err(|e| MailerError::From(e.to_string()))
}

impl Mailer {
    /// Checks the settings without opening anything.
    pub fn check(url: &str, from: &str) -> Result<(), MailerError> {
        builder(url)?;
        from_mailbox(from)?;
        Ok(())
    }

    /// The transport and its pool; connects on the first send. Must be
    /// called inside the Tokio runtime (the pool keeps a reaper task).
    pub fn new(url: &str, from: &str) -> Result<Mailer, MailerError> {
        Ok(Mailer {
            transport: builder(url)?.build(),
            from: from_mailbox(from)?,
        })
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Sends one message; the error is the relay's or the connection's.
    pub async fn send(&self, message: Message) -> Result<(), String> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
