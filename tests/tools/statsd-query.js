#!/usr/bin/env node
// statsd-query: ask a statsd management port one question, print JSON.
//
//   node statsd-query.js HOST PORT [counters|gauges|timers]
//
// statsd answers with util.inspect() of its table, a JavaScript object
// literal ('a.b': 12), not JSON, followed by "END". We evaluate the literal
// in an empty context and print it as JSON: {"name": value, ...}.
// Exit 0 with the JSON; 1 when the port does not answer or the answer does
// not parse; every wait is bounded (5 s).
'use strict';
const net = require('net');
const vm = require('vm');

const [host, port, what = 'counters'] = process.argv.slice(2);
if (!host || !port || !['counters', 'gauges', 'timers'].includes(what)) {
	process.stderr.write('usage: statsd-query.js HOST PORT [counters|gauges|timers]\n');
	process.exit(2);
}

let reply = '';
const timer = setTimeout(() => fail('no complete answer within 5 s'), 5000);

function fail(why) {
	process.stderr.write(`statsd-query: ${host}:${port}: ${why}\n`);
	process.exit(1);
}

function done() {
	const end = reply.lastIndexOf('\nEND');
	let table;
	try {
		table = vm.runInNewContext('(' + reply.slice(0, end) + ')', {}, { timeout: 1000 });
	} catch (e) {
		fail(`cannot parse the answer: ${e.message}`);
	}
	if (table === null || typeof table !== 'object')
		fail('the answer is not a table');
	// Timers are arrays of samples; counters and gauges numbers.
	process.stdout.write(JSON.stringify(table) + '\n');
	clearTimeout(timer);
	sock.destroy();
}

const sock = net.connect({ host, port: Number(port) }, () => sock.write(what + '\n'));
sock.setEncoding('utf8');
sock.on('data', (d) => {
	reply += d;
	if (/\nEND\n\n$/.test(reply))
		done();
});
sock.on('error', (e) => fail(e.message));
sock.on('end', () => {
	if (!/\nEND\n\n$/.test(reply))
		fail('connection closed before END');
});
