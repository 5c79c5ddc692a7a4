// benchmark: tests arrive with the subcommand.
