"""Running untrusted programs: what they may do, how they run, and where."""
