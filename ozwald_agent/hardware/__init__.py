"""Host profiling: what this machine offers (CPU, memory, disk, container engine, GPUs).

`profile.collect_host_profile` is the entry point; `snapshot` records and replays the GPU
libraries' answers so a host can be simulated.
"""
