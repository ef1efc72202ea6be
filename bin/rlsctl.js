#!/usr/bin/env node
// The launcher: code under src/ only throws; exit codes are decided here.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
