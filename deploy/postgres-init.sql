-- one database and one owner per service: no service can read another's tables
CREATE ROLE tasks LOGIN;   CREATE DATABASE tasks OWNER tasks;
CREATE ROLE review LOGIN;  CREATE DATABASE review OWNER review;
CREATE ROLE ledger LOGIN;  CREATE DATABASE ledger OWNER ledger;
CREATE ROLE rules LOGIN;   CREATE DATABASE rules OWNER rules;
CREATE ROLE support LOGIN; CREATE DATABASE support OWNER support;
CREATE ROLE gateway LOGIN; CREATE DATABASE gateway OWNER gateway;
