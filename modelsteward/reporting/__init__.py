"""Reports composed from the facade's public methods (the auditor's report), for every body of the facade."""
