// Drives cordon's ONVIF device face with the npm `onvif` client (a
// widely used third-party ONVIF client), for relay/onvifserve's interop
// test. Usage: node client.js '<plan JSON>'. The plan names the device and
// credentials and lists steps; the script prints one JSON object with one
// result per step ({op, ok, value} or {op, ok:false, error}) and exits 0,
// or exits 1 on a crash of its own.
'use strict';

const { Cam } = require('onvif');

const plan = JSON.parse(process.argv[2]);
const results = [];

function done() {
	process.stdout.write(JSON.stringify({ results }) + '\n');
	process.exit(0);
}

// A bug in a step must not hang the test: give up after the plan's time.
setTimeout(() => {
	results.push({ op: 'deadline', ok: false, error: 'plan took too long' });
	done();
}, plan.deadlineMs || 20000).unref();

const cam = new Cam({
	hostname: plan.hostname,
	port: plan.port,
	username: plan.username,
	password: plan.password,
	useSecure: !!plan.useSecure,
	// the test's own CA (PEM) verifies the face's certificate
	secureOpts: plan.ca ? { ca: plan.ca } : {},
	useWSSecurity: plan.useWSSecurity !== false,
	timeout: 10000,
	autoconnect: false,
});

const warnings = [];
cam.on('warning', (w) => warnings.push(String(w)));

function profileSummary(p) {
	const vec = p.videoEncoderConfiguration || {};
	return {
		token: p.$ && p.$.token,
		name: p.name,
		encoding: vec.encoding,
		width: vec.resolution && vec.resolution.width,
		height: vec.resolution && vec.resolution.height,
		ptz: !!p.PTZConfiguration,
	};
}

const steps = {
	connect: (s, cb) => cam.connect((err) => cb(err, {
		profiles: (cam.profiles || []).map(profileSummary),
		videoSources: Array.isArray(cam.videoSources) ? cam.videoSources.length : 0,
		warnings,
	})),
	deviceInformation: (s, cb) => cam.getDeviceInformation((err, info) => cb(err, info)),
	streamUri: (s, cb) => cam.getStreamUri({ protocol: s.protocol || 'RTSP', profileToken: s.profileToken },
		(err, res) => cb(err, res && res.uri)),
	continuousMove: (s, cb) => cam.continuousMove({ profileToken: s.profileToken, x: s.x, y: s.y, zoom: s.zoom, timeout: s.timeout },
		(err) => cb(err, null)),
	stop: (s, cb) => cam.stop({ profileToken: s.profileToken }, (err) => cb(err, null)),
	presets: (s, cb) => cam.getPresets({ profileToken: s.profileToken }, (err, presets) => cb(err, presets)),
	gotoPreset: (s, cb) => cam.gotoPreset({ profileToken: s.profileToken, preset: s.preset }, (err) => cb(err, null)),
	gotoHome: (s, cb) => cam.gotoHomePosition({ profileToken: s.profileToken }, (err) => cb(err, null)),
	status: (s, cb) => cam.getStatus({ profileToken: s.profileToken }, (err, st) => cb(err, st)),
	nodes: (s, cb) => cam.getNodes((err, nodes) => cb(err, nodes)),
	snapshotUri: (s, cb) => cam.getSnapshotUri({ profileToken: s.profileToken }, (err, res) => cb(err, res)),
	wait: (s, cb) => setTimeout(() => cb(null, null), s.ms),
};

function run(i) {
	if (i >= plan.steps.length) {
		return done();
	}
	const s = plan.steps[i];
	let answered = false;
	const cb = (err, value) => {
		if (answered) {
			return; // the library may call back twice on a parse error
		}
		answered = true;
		results.push(err ? { op: s.op, ok: false, error: String(err.message || err) } : { op: s.op, ok: true, value });
		run(i + 1);
	};
	try {
		steps[s.op](s, cb);
	} catch (e) {
		cb(e);
	}
}

process.on('uncaughtException', (e) => {
	results.push({ op: 'uncaught', ok: false, error: String(e && e.stack || e) });
	done();
});

run(0);
