"""The live study dashboard: the report page of a running or finished study, served with fresh
data as trials are told."""
