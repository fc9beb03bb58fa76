export { ServiceRuntime, type RuntimeOptions, type ServiceRole } from "./service-runtime";
export { runMain, otlpRequested, type Stoppable } from "./run-main";
export { BoundedLoop, type BoundedLoopOptions } from "./bounded-loop";
export { silenceIpServerNameWarning } from "./warnings";
export { FaultPoints } from "./fault-points";
