"""caviar panda: babysit one model, with live curves, mid-run changes, rollback and branches."""
