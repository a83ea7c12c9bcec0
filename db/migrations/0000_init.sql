CREATE TABLE "audit_log" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"action" varchar(32) NOT NULL,
	"actor" varchar(256),
	"roles" text[] DEFAULT '{}'::text[] NOT NULL,
	"client_address" varchar(64),
	"request_id" varchar(128),
	"purpose" text,
	"ticket" varchar(256),
	"tokens" text[] DEFAULT '{}'::text[] NOT NULL,
	"field_counts" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"outcome" varchar(32) NOT NULL,
	"reason" text,
	"prev_hash" "bytea",
	"hash" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "data_keys" (
	"id" serial PRIMARY KEY NOT NULL,
	"purpose" varchar(32) NOT NULL,
	"wrapped_key" "bytea" NOT NULL,
	"kek_id" varchar(2048) NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"rewrapped_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "pii_vault" (
	"token" varchar(256) PRIMARY KEY NOT NULL,
	"field" varchar(16) NOT NULL,
	"ciphertext" "bytea" NOT NULL,
	"data_key_id" integer NOT NULL,
	"token_key_version" smallint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "quarantine" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "quarantine_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"message_id" varchar(128) NOT NULL,
	"reasons" jsonb NOT NULL,
	"body_ciphertext" "bytea" NOT NULL,
	"data_key_id" integer NOT NULL,
	"body_bytes" integer NOT NULL,
	"sent_at" timestamp with time zone,
	"receive_count" integer,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "quarantine_message_id_unique" UNIQUE("message_id")
);
--> statement-breakpoint
CREATE TABLE "token_keys" (
	"version" smallint PRIMARY KEY NOT NULL,
	"wrapped_key" "bytea" NOT NULL,
	"kek_id" varchar(2048) NOT NULL,
	"state" varchar(16) DEFAULT 'active' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"rewrapped_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "user_logins" (
	"message_id" varchar(128) PRIMARY KEY NOT NULL,
	"user_id" varchar(128) NOT NULL,
	"device_type" varchar(32) NOT NULL,
	"masked_ip" varchar(256) NOT NULL,
	"masked_device_id" varchar(256) NOT NULL,
	"locale" varchar(32),
	"app_version" varchar(32) NOT NULL,
	"app_version_major" integer,
	"app_version_minor" integer,
	"app_version_patch" integer,
	"create_date" date NOT NULL,
	"sent_at" timestamp with time zone NOT NULL,
	"ingested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"token_key_version" smallint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "pii_vault" ADD CONSTRAINT "pii_vault_data_key_id_data_keys_id_fk" FOREIGN KEY ("data_key_id") REFERENCES "public"."data_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "quarantine" ADD CONSTRAINT "quarantine_data_key_id_data_keys_id_fk" FOREIGN KEY ("data_key_id") REFERENCES "public"."data_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_log_actor_idx" ON "audit_log" USING btree ("actor","seq");--> statement-breakpoint
CREATE INDEX "audit_log_occurred_at_idx" ON "audit_log" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "audit_log_tokens_idx" ON "audit_log" USING gin ("tokens");--> statement-breakpoint
CREATE INDEX "quarantine_received_at_idx" ON "quarantine" USING btree ("received_at");--> statement-breakpoint
CREATE INDEX "user_logins_masked_ip_idx" ON "user_logins" USING btree ("masked_ip");--> statement-breakpoint
CREATE INDEX "user_logins_masked_device_id_idx" ON "user_logins" USING btree ("masked_device_id");--> statement-breakpoint
CREATE INDEX "user_logins_create_date_idx" ON "user_logins" USING btree ("create_date");