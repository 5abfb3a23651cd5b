//! The list of domain modules the `wuqing` binary mounts, in a library so that the binary and the
//! whole-platform tests (`tests/cross_org.rs`) mount exactly the same set. Glue only.

use kernel::module::Module;
use std::sync::Arc;

/// The domain modules of this build. Adding a domain is one line here.
pub fn modules(jt808: Option<std::net::SocketAddr>, mqtt: Option<String>, demo: bool) -> Vec<Arc<dyn Module>> {
    let mut transport = match jt808 {
        Some(addr) => transport::TransportModule::with_gateway(addr),
        None => transport::TransportModule::new(),
    };
    transport.simulate = demo;
    transport.alerting = true;
    let iot = iot::IotModule { simulate: demo, listen: mqtt, ..iot::IotModule::default() };
    vec![
        Arc::new(transport),
        Arc::new(alarms::AlarmsModule::default()),
        Arc::new(iot),
        Arc::new(supervision::SupervisionModule),
        Arc::new(health::HealthModule { simulate: demo, ..health::HealthModule::default() }),
        Arc::new(console::ConsoleModule),
    ]
}
