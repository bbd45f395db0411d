//! Serve any tower service with boxhook's connection limits (being moved here
//! from the command line tool).
