"""`check_dicom`: a C-ECHO check for Nagios, Icinga, Checkmk and Zabbix.

Pure modules (no I/O, no clock): `states` (service states), `ranges` (threshold ranges),
`perfdata`, `policy` (outcome → state), `single` (one peer's verdict), `fleet` (many peers'
summary), `formats` (the output formats). `runner` is the only module here that does network
I/O: it runs `probe()` or `sweep()` under the check's deadline. The command line lives in
`echoprobe.cli.cmd_check`.
"""
