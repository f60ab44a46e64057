"""The package's vocabulary, under every other layer: send requests and their options, phone
numbers and e-mail addresses, masking, the exception tree, settings and the environment they are
read from, the sending policy's rules, quiet hours, schedules, and what counts as an outage.

Each module imports only its neighbours here; every other layer (engage, state, delivery,
worker, api, http, cli, sandbox) may import it.
"""
