"""The load benchmarks behind ``ticksync bench``, installed with the package.

A shell-level package like :mod:`netcode.cli`: it starts servers and bots in processes,
opens loopback sockets and reads clocks, so no protocol layer imports it. One idea per
module:

* :mod:`.virtual`, :mod:`.lockstep_virtual`, :mod:`.statesync_virtual`: sans-IO servers
  measured on the seeded simulator (virtual time), with lightweight fake clients;
* :mod:`.colyseus`: the Colyseus comparison over real UDP (``bench.bench_statesync_loopback``);
* :mod:`.udp_transport`: packets per second the UDP transport takes;
* :mod:`.replay`: replay throughput.

``bench/`` in a checkout keeps thin wrappers with the old module names.
"""
