//! A Box-like sender and replay (being moved here from the test kit and the
//! command line tool).
