"""Command-line sub-commands; each module is thin glue over the library."""
