// The seed benchmark's k6 script, parametrised so orch can aim and shape it.
// By hand: `k6 run k6/simple.js` runs the seed profile against http://127.0.0.1:8000/.
// Environment (not K6_*: k6 reads those itself):
//   TARGET_URL     what to load (default http://127.0.0.1:8000/)
//   ORCH_STAGES    JSON list of {duration, target} ramping stages (default: the seed's)
//   ORCH_RATE      when set, an open model: constant arrival rate of ORCH_RATE req/s for
//                  ORCH_DURATION with up to ORCH_MAX_VUS VUs, instead of ramping VUs
//   ORCH_VUS       when set (and ORCH_RATE is not), a closed loop of ORCH_VUS constant VUs
//                  for ORCH_DURATION
import http from 'k6/http';

const SEED_STAGES = [
  { duration: '5s', target: 100 },
  { duration: '5s', target: 200 },
  { duration: '5s', target: 300 },
  { duration: '5s', target: 400 },
  { duration: '5s', target: 500 },
  { duration: '45s', target: 500 },
  { duration: '5s', target: 400 },
  { duration: '5s', target: 300 },
  { duration: '5s', target: 200 },
  { duration: '5s', target: 100 },
];

const TARGET_URL = __ENV.TARGET_URL || 'http://127.0.0.1:8000/';
const STAGES = __ENV.ORCH_STAGES ? JSON.parse(__ENV.ORCH_STAGES) : SEED_STAGES;

function scenario() {
  if (__ENV.ORCH_RATE) {
    return {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.ORCH_RATE),
      timeUnit: '1s',
      duration: __ENV.ORCH_DURATION || '30s',
      preAllocatedVUs: Number(__ENV.ORCH_MAX_VUS || 500),
      maxVUs: Number(__ENV.ORCH_MAX_VUS || 500),
    };
  }
  if (__ENV.ORCH_VUS) {
    return {
      executor: 'constant-vus',
      vus: Number(__ENV.ORCH_VUS),
      duration: __ENV.ORCH_DURATION || '30s',
    };
  }
  return { executor: 'ramping-vus', startVUs: 0, stages: STAGES };
}

export const options = {
  scenarios: { load: scenario() },
  summaryTrendStats: ['min', 'avg', 'med', 'max', 'p(99)', 'p(99.9)', 'p(99.99)'],
  discardResponseBodies: true,
};

export default function () {
  http.get(TARGET_URL);
}
