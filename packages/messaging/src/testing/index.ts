/** Test support: the transport conformance suite and its helpers. */
export { describeTransportConformance, DeliveryLog, testEnvelope, type ConformanceOptions } from './transport-conformance.js';
