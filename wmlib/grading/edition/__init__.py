"""The student edition: what an instructor publishes to students (``build``), and its Makefile, README and
.gitignore."""
