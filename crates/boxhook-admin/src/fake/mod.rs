//! A faithful fake of Box's webhooks API (being moved here from the test kit).
