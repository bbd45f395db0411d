//! Open a boxhook inbox from a URL (being moved here from the command line
//! tool).
