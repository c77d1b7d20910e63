# ImportJob arrives with the CSV import wizard.
