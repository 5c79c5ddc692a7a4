// verify: tests arrive with the subcommand.
