import { describeStoreContract } from './testing/index.js';

describeStoreContract('sqlite');
describeStoreContract('postgres');
