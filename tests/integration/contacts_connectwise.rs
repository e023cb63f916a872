//! connectwise adapter: contacts, tickets and configuration contacts against the sandbox (issue 4).
