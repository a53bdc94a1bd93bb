"""The commons state machine: a pure fold of the entry set (see protocols/commons.md)."""
