// Starts the lwm2m-node-lib interactive server on the UDP port named by LWM2M_PORT (default 5684).
var config = require('lwm2m-node-lib/config');
if (process.env.LWM2M_PORT) {
    config.server.port = parseInt(process.env.LWM2M_PORT, 10);
}
require('lwm2m-node-lib/bin/iotagent-lwm2m-server.js');
