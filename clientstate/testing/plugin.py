"""pytest plugin registered by clientstate (entry point ``pytest11``); fixtures come in a later step."""
