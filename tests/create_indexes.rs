// create_indexes: tests arrive with the subcommand.
