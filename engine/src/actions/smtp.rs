//! The `email` notifier: a minimal SMTP client (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA).
