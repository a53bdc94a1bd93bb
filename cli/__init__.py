"""The p2pc command-line interface."""
