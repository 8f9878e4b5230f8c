"""The command line interface (`usergroups ...`)."""
