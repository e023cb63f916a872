//! Notifier adapters (Graph sendMail, incoming webhook) against the sandbox (issue 4).
