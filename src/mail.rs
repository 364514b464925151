//! Sending e-mail over SMTP with lettre: the transport built (and checked)
//! from the `smtp:` configuration at start-up, and one message per call.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::configuration::SmtpSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid smtp configuration: {0}")]
    Config(String),
    #[error("invalid e-mail address {address:?}: {detail}")]
    Address { address: String, detail: String },
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("smtp delivery to {server} failed: {detail}")]
    Send { server: String, detail: String },
}

/// A ready SMTP client. Built once; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server).field("from", &self.from.to_string()).finish()
    }
}

/// One e-mail to send.
pub struct Email<'a> {
    pub to: &'a [String],
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    pub attachment: Option<(&'a str, &'a [u8])>,
}

impl Mailer {
    /// Checks the configuration and builds the transport; every mistake is
    /// reported here, at start-up, not at the first report.
    pub fn from_settings(s: &SmtpSettings) -> Result<Mailer, MailError> {
        let security = match s.security.as_deref().unwrap_or("none") {
            "none" => Security::None,
            "starttls" => Security::StartTls,
            "tls" => Security::Tls,
            other => return Err(MailError::Config(format!("security {other:?}: use none, starttls or tls"))),
        };
        if s.host.trim().is_empty() {
            return Err(MailError::Config("host is empty".into()));
        }
        let from: Mailbox =
            s.from.parse().map_err(|e| MailError::Address { address: s.from.clone(), detail: format!("{e}") })?;
        let builder = match security {
            Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| MailError::Config(format!("starttls with {}: {e}", s.host)))?,
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                .map_err(|e| MailError::Config(format!("tls with {}: {e}", s.host)))?,
        };
        let mut builder = builder.port(s.port).timeout(Some(Duration::from_secs(30)));
        match (&s.username, &s.password_env) {
            (Some(user), Some(var)) => {
                let password = std::env::var(var).map_err(|_| {
                    MailError::Config(format!("password_env {var}: the environment variable is not set"))
                })?;
                let password = secrecy::SecretString::from(password);
                builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
            }
            (Some(_), None) => return Err(MailError::Config("username is set but password_env is not".into())),
            (None, Some(_)) => return Err(MailError::Config("password_env is set but username is not".into())),
            (None, None) => {}
        }
        Ok(Mailer { transport: builder.build(), from, server: format!("{}:{}", s.host, s.port) })
    }

    pub async fn send(&self, email: &Email<'_>) -> Result<(), MailError> {
        let mut builder = Message::builder().from(self.from.clone()).subject(email.subject);
        for to in email.to {
            let mailbox: Mailbox =
                to.parse().map_err(|e| MailError::Address { address: to.clone(), detail: format!("{e}") })?;
            builder = builder.to(mailbox);
        }
        let alternative = MultiPart::alternative()
            .singlepart(SinglePart::plain(email.text.to_owned()))
            .singlepart(SinglePart::html(email.html.to_owned()));
        let body = match email.attachment {
            Some((name, bytes)) => MultiPart::mixed().multipart(alternative).singlepart(
                Attachment::new(name.to_owned())
                    .body(bytes.to_vec(), ContentType::parse("text/csv; charset=utf-8").expect("static content type")),
            ),
            None => alternative,
        };
        let message = builder.multipart(body).map_err(|e| MailError::Build(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Send { server: self.server.clone(), detail: e.to_string() })
    }
}

/// Validates a list of recipients (feed `report.to`, `--report-to`).
pub fn check_recipients(list: &[String]) -> Result<(), MailError> {
    for to in list {
        to.parse::<Mailbox>().map_err(|e| MailError::Address { address: to.clone(), detail: format!("{e}") })?;
    }
    Ok(())
}
