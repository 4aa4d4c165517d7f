"""``caviar``: thin commands over the Python API, one module per command.

caviar tune [CONFIG] [flags]   run or continue a study (no CONFIG: the embedded demo)
caviar show STUDY              leaderboard and best configuration
caviar report STUDY            write the HTML/PNG report again
caviar test STUDY              score the best configuration on the test set, once
caviar export STUDY            a kept model as a torch.export program (.pt2)
caviar studies                 the studies in a storage file
caviar panda [CONFIG] ...      babysit one model (see caviar.cli.panda)
caviar experiment NAME         a textbook lesson with its figure and numbers

:mod:`caviar.cli.start` is the console script, :mod:`caviar.cli.main` builds the parser and
runs a command. A command module registers its parser (``add_parser``) and imports the rooms
it drives only when it runs, so the command starts without numpy or torch.
"""
