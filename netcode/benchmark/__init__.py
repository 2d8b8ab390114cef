"""The load benchmarks behind ``ticksync bench``, installed with the package.

A shell-level package like :mod:`netcode.cli`: it starts servers and bots in processes,
opens loopback sockets and reads clocks, so no protocol layer imports it. One idea per
module:

* :mod:`.command`: ``ticksync bench`` itself (options, progress bar, what is written);
* :mod:`.matrix`: the cells (mode x clients x entities x tick rate), their figures, the
  capacity search;
* :mod:`.loopback`: one load run over real UDP: a server process and a pinned
  load-generator process (:mod:`.processes`: pinning, CPU, RSS, pipes);
* :mod:`.throughput`: cells without a network (:mod:`.replay`, :mod:`.codec`) and the
  extension point for more;
* :mod:`.results`, :mod:`.plots`, :mod:`.readme`: JSON, Markdown, comparison, PNG plots,
  the README's generated section;
* :mod:`.virtual`, :mod:`.lockstep_virtual`, :mod:`.statesync_virtual`: sans-IO servers
  measured on the seeded simulator (virtual time), with the lightweight fake clients the
  loopback runs use too;
* :mod:`.colyseus`: the Colyseus comparison over real UDP (``bench.bench_statesync_loopback``);
* :mod:`.udp_transport`: packets per second the UDP transport takes.

``bench/`` in a checkout keeps thin wrappers with the old module names.
"""
