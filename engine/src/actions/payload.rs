//! What each HTTP notifier sends: pure functions from a rendered alert to a request.
