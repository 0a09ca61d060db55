"""XDF files: the reader, the crash-safe writer, recording live streams, replaying a file as an
offline source or over LSL."""
